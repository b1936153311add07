FROM busybox
ADD https://example.com/a.tar.gz /tmp/
ADD local.tar /x/
