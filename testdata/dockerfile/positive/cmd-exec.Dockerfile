FROM busybox
CMD ["sh", "-c", "echo $HOME"]
