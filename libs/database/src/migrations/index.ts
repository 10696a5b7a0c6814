import { InitialSchema1796416253914 } from './1796416253914-InitialSchema';
import { ResourceManagement1796417140613 } from './1796417140613-ResourceManagement';
import { AdminIdempotency1796418029169 } from './1796418029169-AdminIdempotency';
import { ProactiveRefreshIndex1796420000000 } from './1796420000000-ProactiveRefreshIndex';
import { RateLimit1796420343395 } from './1796420343395-RateLimit';
import { DelegatedPageIndex1796431000000 } from './1796431000000-DelegatedPageIndex';
import { DataRevision1796432000000 } from './1796432000000-DataRevision';

// Every migration, in order. Listed explicitly (not globbed) so the same list works from source
// (Jest) and from the compiled build (CLI, apps). `npm run migration:generate` writes a new file
// here; add its class to the end of this list.
export const MIGRATIONS: Function[] = [InitialSchema1796416253914, ResourceManagement1796417140613, AdminIdempotency1796418029169, ProactiveRefreshIndex1796420000000, RateLimit1796420343395, DelegatedPageIndex1796431000000, DataRevision1796432000000];
