FROM busybox AS build
RUN touch /out
FROM scratch
COPY --from=build /out /out
