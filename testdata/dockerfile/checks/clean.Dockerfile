FROM alpine AS build
RUN true
FROM alpine
WORKDIR /app
COPY --from=build /x /y
CMD ["x"]
