FROM busybox
ENTRYPOINT ["/bin/echo"]
CMD ["a"]
