FROM busybox
RUN --mount=type=secret,id=token,required=true,mode=0400 cat /run/secrets/token
RUN --mount=type=secret,id=aws,env=AWS_KEY true
