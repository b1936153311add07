FROM busybox
ARG URL=http://example.invalid/a
COPY ${URL} /a
