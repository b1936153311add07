FROM busybox
ADD --link --exclude=*.md --exclude=docs/ . /app
