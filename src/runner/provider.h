/* provider.h: placeholder until it lands. */
#ifndef CGW_PH_PROVIDER_H
#define CGW_PH_PROVIDER_H
#endif
