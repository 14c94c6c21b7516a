import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { can, checkSession, session, type Permission } from '@/stores/session'
import LoginView from '@/views/login/LoginView.vue'

// Every page but the login is loaded when first opened, so the alarm
// board does not wait for charts or video code.
declare module 'vue-router' {
  interface RouteMeta {
    perm?: Permission
    public?: boolean
    nav?: string
  }
}

export const pages: RouteRecordRaw[] = [
  { path: '/alarms', name: 'alarms', component: () => import('@/views/alarms/AlarmBoard.vue'), meta: { perm: 'alarms', nav: 'alarms' } },
  { path: '/facility', name: 'facility', component: () => import('@/views/facility/FacilityView.vue'), meta: { perm: 'devices', nav: 'facility' } },
  { path: '/cameras', name: 'cameras', component: () => import('@/views/cameras/CameraWall.vue'), meta: { perm: 'live video', nav: 'cameras' } },
  { path: '/history', name: 'history', component: () => import('@/views/history/HistoryView.vue'), meta: { perm: 'history', nav: 'history' } },
  { path: '/inspection', name: 'inspection', component: () => import('@/views/inspection/InspectionView.vue'), meta: { perm: 'availability', nav: 'inspection' } },
  { path: '/hazards', name: 'hazards', component: () => import('@/views/hazards/HazardsView.vue'), meta: { perm: 'hazard list', nav: 'hazards' } },
  { path: '/reports', name: 'reports', component: () => import('@/views/reports/ReportsView.vue'), meta: { perm: 'reports', nav: 'reports' } },
  { path: '/audit', name: 'audit', component: () => import('@/views/audit/AuditView.vue'), meta: { perm: 'audit log', nav: 'audit' } },
  { path: '/health', name: 'health', component: () => import('@/views/health/HealthView.vue'), meta: { perm: 'gateway health', nav: 'health' } },
  { path: '/users', name: 'users', component: () => import('@/views/users/UsersView.vue'), meta: { perm: 'users', nav: 'users' } },
]

const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: LoginView, meta: { public: true } },
  ...pages,
  // A report's printable page: opened from the list, not in the navigation.
  { path: '/reports/:id', name: 'report', component: () => import('@/views/reports/ReportPage.vue'), meta: { perm: 'reports' } },
  { path: '/:rest(.*)*', name: 'home', redirect: () => ({ name: firstPage() }) },
]

/** firstPage is where a person lands: the alarm board when they may see it. */
export function firstPage(): string {
  for (const p of pages) if (!p.meta?.perm || can(p.meta.perm)) return String(p.name)
  return 'login'
}

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach(async (to) => {
  if (!session.checked) await checkSession()
  if (to.meta.public) return session.user && firstPage() !== 'login' ? { name: firstPage() } : true
  if (!session.user) return { name: 'login', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  if (to.meta.perm && !can(to.meta.perm)) return { name: firstPage() }
  return true
})
