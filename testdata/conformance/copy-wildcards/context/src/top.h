#define TOP
