ARG SRC=build
FROM busybox AS build
FROM scratch
ARG SRC
COPY --from=$SRC /x /x
