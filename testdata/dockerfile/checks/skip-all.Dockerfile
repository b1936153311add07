# check=skip=all
FROM alpine as b
CMD echo
