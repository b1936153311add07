FROM busybox
COPY --frm=build a b
