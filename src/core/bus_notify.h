/* bus_notify.h: placeholder until it lands. */
#ifndef CGW_PH_BUS_NOTIFY_H
#define CGW_PH_BUS_NOTIFY_H
#endif
