# foo=bar
# escape=`
FROM busybox
