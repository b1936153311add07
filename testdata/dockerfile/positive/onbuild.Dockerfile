FROM busybox
ONBUILD RUN echo triggered
ONBUILD COPY --chown=1 . /app
