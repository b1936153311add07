FROM alpine
ENTRYPOINT sh -c "sleep 1"
