FROM busybox
ENV P=/usr/local/bin/tool.tar.gz
ENV A=${P#*/} B=${P##*/} C=${P%.*} D=${P%%.*} E=${P/local/opt} F=${P//o/0}
