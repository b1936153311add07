FROM busybox
ENV a=old
ENV a=new b=$a
ENV c=$a
