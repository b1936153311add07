# check=skip
FROM busybox
