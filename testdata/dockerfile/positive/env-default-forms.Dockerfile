FROM busybox
ENV E=
ENV A=${UNSET:-dflt} B=${E:-empty} C=${E-set} D=${E:+alt} F=${NOPE+alt}
