// zh-CN first, English by a switch that needs no reload. Pages keep their
// own texts beside them (useI18n with local messages); the shared words
// are here.
import { createI18n } from 'vue-i18n'
import zhCN from './zh-CN'
import en from './en'

export type Locale = 'zh-CN' | 'en'

const saved = (() => {
  try {
    return localStorage.getItem('sw.locale')
  } catch {
    return null
  }
})()

export const i18n = createI18n({
  legacy: false,
  locale: saved === 'en' ? 'en' : 'zh-CN',
  fallbackLocale: 'en',
  messages: { 'zh-CN': zhCN, en },
  missingWarn: false,
  fallbackWarn: false,
})

export function setLocale(l: Locale) {
  i18n.global.locale.value = l
  document.documentElement.lang = l
  try {
    localStorage.setItem('sw.locale', l)
  } catch {
    /* private mode: the choice lasts this page */
  }
}

/** pick chooses the Chinese or English one of a pair the gateway sends ({zh, en}). */
export function pick(t: { zh?: string; en?: string } | undefined | null): string {
  if (!t) return ''
  return i18n.global.locale.value === 'en' ? t.en || t.zh || '' : t.zh || t.en || ''
}
