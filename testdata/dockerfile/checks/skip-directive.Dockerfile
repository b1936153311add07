# check=skip=FromAsCasing,JSONArgsRecommended
FROM alpine as b
CMD echo
MAINTAINER me
