FROM busybox
RUN touch /out
FROM scratch
COPY --from=0 /out /out
