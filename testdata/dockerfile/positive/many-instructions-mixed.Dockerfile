ARG BASE=busybox
FROM $BASE AS build
WORKDIR /src
COPY . .
RUN make
FROM scratch
COPY --from=build /src/out /app
USER 1000
EXPOSE 8080
ENTRYPOINT ["/app"]
