# lamina's own image: the binary, the shared libraries it and newuidmap/newgidmap load, and a user 1000
# with a subordinate range, on FROM scratch. Built by lamina itself from the context that
# scripts/lamina-image.sh stages (the files `ldd` names, in rootfs.tar; ADD keeps their file caps):
#   scripts/lamina-image.sh OUT_DIR && lamina build -t lamina:dev OUT_DIR
# Runs as uid 1000 with no added capabilities (see examples/kubernetes/).
FROM scratch
ADD rootfs.tar /
COPY --chown=1000:1000 home/ /home/
USER 1000:1000
ENV HOME=/home/builder PATH=/usr/local/bin:/usr/bin:/bin TMPDIR=/tmp
WORKDIR /home/builder
ENTRYPOINT ["/usr/local/bin/lamina"]
CMD ["info"]
