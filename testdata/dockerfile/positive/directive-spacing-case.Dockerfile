#   ESCAPE   =   `
FROM busybox
RUN a `
 b
