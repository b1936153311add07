# escape=`
FROM busybox
RUN echo a `
    b
COPY a\b c\ /x/
