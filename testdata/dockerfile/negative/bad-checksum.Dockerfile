FROM busybox
ADD --checksum=md5:abc https://x/y /y
