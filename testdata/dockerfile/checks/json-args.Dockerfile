FROM alpine
CMD echo hi
ENTRYPOINT ["sh"]
