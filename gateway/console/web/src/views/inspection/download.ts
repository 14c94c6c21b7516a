// CSV downloads of the reports: the gateway's own CSV (format=csv), saved
// under a name that says which report, which zone and which period.
import { ref } from 'vue'
import { ElMessage } from 'element-plus'
import { session } from '@/stores/session'
import { fileStamp, safeName, saveCSV } from '@/utils/download'

/** useReportCSV is a report's download button: its busy state and its action. */
export function useReportCSV(
  prefix: string,
  path: string,
  period: () => { from: string; to: string; zone: string },
  failed: (msg: string) => string,
) {
  const downloading = ref(false)
  async function downloadCSV() {
    downloading.value = true
    try {
      const { from, to, zone } = period()
      const tz = session.facility?.timezone || undefined
      await saveCSV(path, { from, to, zone }, `${prefix}_${safeName(zone)}_${fileStamp(from, tz)}_${fileStamp(to, tz)}.csv`)
    } catch (e) {
      ElMessage.error(failed((e as Error).message))
    } finally {
      downloading.value = false
    }
  }
  return { downloading, downloadCSV }
}
