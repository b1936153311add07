FROM busybox
COPY ["a b", "c", "/dst dir/"]
