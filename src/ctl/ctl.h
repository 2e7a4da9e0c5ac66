/* ctl.h: placeholder */
#ifndef CGW_CTL_H
#define CGW_CTL_H
#endif
