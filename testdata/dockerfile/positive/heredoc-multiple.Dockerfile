FROM busybox
COPY <<A <<B /dst/
first
A
second
B
