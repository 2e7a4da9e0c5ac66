/* rules.h: placeholder until it lands. */
#ifndef CGW_PH_RULES_H
#define CGW_PH_RULES_H
#endif
