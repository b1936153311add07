   FROM busybox
	 RUN true
   # indented comment
