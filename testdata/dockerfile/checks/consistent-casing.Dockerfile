FROM alpine
RUN true
run false
COPY a b
