FROM busybox
RUN <<-EOF
	echo tab stripped
		echo two tabs
	EOF
