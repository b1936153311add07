FROM busybox
COPY https://example.invalid/a.tar /a
