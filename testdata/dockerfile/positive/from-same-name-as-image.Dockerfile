FROM a AS a
