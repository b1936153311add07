FROM busybox
ENV A=${B:=x}
