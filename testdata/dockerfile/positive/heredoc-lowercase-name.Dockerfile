FROM busybox
COPY <<eot /out.txt
hello
eot
