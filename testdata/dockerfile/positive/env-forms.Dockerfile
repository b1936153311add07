FROM busybox
ENV A=1 B="two words" C='single $A'
ENV LEGACY value with spaces
