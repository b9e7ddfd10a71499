// zlib's raw inflate, for looking into zip archives (Attachments plug-in).
#include <zlib.h>
