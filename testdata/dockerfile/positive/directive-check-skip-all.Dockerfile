# check=skip=all
FROM busybox
MAINTAINER x
CMD echo
