# top
FROM busybox
# mid


RUN true # not a comment
