FROM alpine
ENV A b
LABEL x y
ENV C=d
