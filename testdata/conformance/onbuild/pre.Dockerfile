FROM lamina-test-base
ONBUILD COPY trigger.txt /from-trigger.txt
ONBUILD RUN echo "ran in child" > /onbuild-ran.txt
ONBUILD ENV TRIGGERED=yes
ONBUILD LABEL triggered=true
RUN echo parent > /parent.txt
