FROM lamina-test-base
CMD ["inherited", "cmd"]
LABEL from.parent=yes
ENV PARENT=1
