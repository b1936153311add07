# escape=`
FROM busybox
ENV A=1 B=`$A C=\$A
