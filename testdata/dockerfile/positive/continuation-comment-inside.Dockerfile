FROM busybox
RUN echo a \
# a comment
    b \
  # indented comment
    c
