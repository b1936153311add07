FROM busybox
ENV U=app
USER $U:staff
WORKDIR /home/$U
WORKDIR sub
