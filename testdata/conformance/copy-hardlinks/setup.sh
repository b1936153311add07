ln hl/a hl/b
mkdir hl/sub && ln hl/a hl/sub/c
printf solo > hl/solo
